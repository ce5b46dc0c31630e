#!/usr/bin/env bash
# Mutation testing of the pure core with mutmut 3: how much of each module the core tests really pin.
#
#   tools/mutation.sh                         # every module of rebalancer/core/
#   tools/mutation.sh ladder funding          # only these modules
#   MUTATION_TESTS="tests/core" tools/mutation.sh diff
#   MUTATION_TESTS="tests/test_executor.py" tools/mutation.sh rebalancer/engine/executor.py   # a module outside core/
#
# A bare name is a module of rebalancer/core/; a path (rebalancer/engine/executor.py) names any module of the package.
# MUTATION_TESTS chooses the tests every mutant runs against (tests/core by default): pick a fast set that
# exercises the module.
#
# It works on a throw-away copy of the checkout (mutmut writes a mutants/ tree and a cache next to the code), runs
# mutmut there and prints, per module, killed / total and the surviving mutants' names. `mutmut show NAME`, run in the
# printed work directory, shows one survivor's diff. Needs mutmut (pip install mutmut) in the active environment.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  modules=(ladder diff side_match line_matching funding guards skew limits lifecycle fills loss plan plan_codec saved_plan
    gate)
fi
tests=${MUTATION_TESTS:-tests/core}
work=$(mktemp -d "${TMPDIR:-/tmp}/rebalancer-mutation.XXXXXX")
(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work")
# mutmut 3.8's stats run reads the private ``item._nodeid``, which pytest 9 no longer sets (every mutant then stays
# "not checked"): the throw-away copy's conftest gives it the public node id.
cat >> "$work/tests/conftest.py" <<'PY'


def pytest_itemcollected(item: pytest.Item) -> None:
    """mutmut 3.8 reads ``item._nodeid``, which pytest 9 no longer sets: give it the public node id."""
    if not hasattr(item, "_nodeid"):
        item._nodeid = item.nodeid  # type: ignore[attr-defined]
PY
only=""
paths=()
for m in "${modules[@]}"; do
  case "$m" in
    */*) path="${m%.py}.py" ;;
    *) path="rebalancer/core/${m}.py" ;;
  esac
  [ -f "$top/$path" ] || { echo "no such module: $path" >&2; exit 2; }
  paths+=("$path")
  only+="\"${path}\", "
done
cat >> "$work/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["rebalancer/"]
also_copy = ["schemas/", "jobs/"]
only_mutate = [${only%, }]
pytest_add_cli_args_test_selection = ["${tests}"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]
TOML
cd "$work"
export REBALANCER_QUICK=1  # a quarter of CI's Hypothesis examples per run: the kill rates are a lower bound
echo "mutation work directory: $work" >&2
mutmut run >/dev/null 2>&1 || true
mutmut results --all true >"$work/results.txt" 2>/dev/null || mutmut results >"$work/results.txt"
python - "$work/results.txt" "${paths[@]}" <<'PY'
import collections, re, sys
path, *files = sys.argv[1:]
prefixes = {f[: -len(".py")].replace("/", ".") + ".": f[: -len(".py")].rsplit("/", 1)[-1] for f in files}
modules = list(prefixes.values())
rows = collections.defaultdict(collections.Counter)
survivors = collections.defaultdict(list)
for line in open(path):
    m = re.match(r"\s*(rebalancer\.\S+):\s*(\w[\w ]*)", line)
    if not m:
        continue
    name, status = m.group(1), m.group(2).strip()
    module = next((short for prefix, short in prefixes.items() if name.startswith(prefix)), None)
    if module is None:
        continue
    rows[module][status] += 1
    if status == "survived":
        survivors[module].append(name)
everything = sum(rows.values(), collections.Counter())
if everything and everything["not checked"] == sum(everything.values()):
    sys.exit("every mutant is 'not checked': mutmut ran no test (see the pytest hook above); no figures")
for module in modules:
    c = rows.get(module, collections.Counter())
    total = sum(c.values())
    killed = c["killed"] + c["timeout"] + c["caught by type check"]
    share = 100 * killed / total if total else 0.0
    print(f"{module:10s} {killed:4d} / {total:4d} killed  {share:5.1f} %   {dict(c)}")
    for name in survivors.get(module, []):
        print(f"    survived: {name}")
PY
