import os
from pathlib import Path

# Snapshot tests build their repository here, so that paths in the pictures never vary.
# LOOPTUI_SNAPSHOT_ROOT moves it, for checkouts whose tests run at the same time on one
# machine (each would wipe the other's repository midway).
SNAPSHOT_ROOT = Path(os.environ.get("LOOPTUI_SNAPSHOT_ROOT", "/tmp/looptui-snapshot-tests"))
