"""The pure core: Job + market snapshot → target ladder → diff → Plan. Values in, values out; no I/O, no clock."""
