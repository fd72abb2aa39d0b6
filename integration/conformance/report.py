"""Run the conformance suite against several runtimes and print a Markdown
table: one row per test, one result column per runtime.

    python3 integration/conformance/report.py runc=/usr/sbin/runc ocirt=build/ocirt [-- pytest args]

Each runtime gets its own pytest run (OCIRT_CONFORMANCE_RUNTIME=path) with a
JUnit XML report, which is what the table is read from.
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def run_suite(path, extra):
    with tempfile.NamedTemporaryFile(suffix=".xml") as xml:
        env = dict(os.environ, OCIRT_CONFORMANCE_RUNTIME=path)
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml.name}",
                        HERE, *extra], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        results = {}
        for case in ET.parse(xml.name).getroot().iter("testcase"):
            name = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                results[name] = "FAIL"
            elif case.find("skipped") is not None:
                results[name] = "skip"
            else:
                results[name] = "pass"
        return results


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    runtimes = [a.split("=", 1) for a in (argv[:argv.index("--")] if "--" in argv else argv)]
    if not runtimes:
        sys.exit(__doc__)
    columns = [(label, run_suite(path, extra)) for label, path in runtimes]
    names = list(dict.fromkeys(n for _, res in columns for n in res))
    print("| test | " + " | ".join(label for label, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in names:
        print(f"| `{name}` | " + " | ".join(res.get(name, "—") for _, res in columns) + " |")
    for label, res in columns:
        passed = sum(1 for v in res.values() if v == "pass")
        print(f"\n{label}: {passed}/{len(res)} passed", end="")
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
