"""A stand-in for the dbt CLI, used ONLY by the tests (the image does not contain it).

support.write_fake_dbt() copies it with the test interpreter's shebang. It appends one JSON line per
invocation to <--project-dir>/invocations.jsonl (argv, pid, the SNOWFLAKE_* variables it received),
then behaves as the request's vars say: fake_sleep (seconds), fake_exit (code), fake_output (printed).
"""

import json
import os
import sys
import time

argv = sys.argv[1:]
project_dir = argv[argv.index("--project-dir") + 1]
variables = json.loads(argv[argv.index("--vars") + 1])
with open(os.path.join(project_dir, "invocations.jsonl"), "a", encoding="utf-8") as f:
    f.write(
        json.dumps(
            {"argv": sys.argv, "pid": os.getpid(), "snowflake": {k: v for k, v in os.environ.items() if k.startswith("SNOWFLAKE_")}, "env_keys": sorted(os.environ)}
        )
        + "\n"
    )
print("fake dbt: running", variables.get("run_id"), flush=True)
if variables.get("fake_output"):
    print(variables["fake_output"], flush=True)
time.sleep(float(variables.get("fake_sleep", 0)))
code = int(variables.get("fake_exit", 0))
print("fake dbt: done with exit code", code, flush=True)
sys.exit(code)
