from pathlib import Path

# Snapshot tests build their repository here, so that paths in the pictures never vary.
SNAPSHOT_ROOT = Path("/tmp/looptui-snapshot-tests")
