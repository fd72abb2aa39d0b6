# The repository root is on sys.path (rootdir conftest), so tests share
# tests/support.py and integration tests can import it too.
