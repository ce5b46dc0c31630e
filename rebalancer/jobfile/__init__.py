"""Job files: YAML → Job, shape-checked by the JSON Schema and cross-checked, every problem with file:line:col."""
