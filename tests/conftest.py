import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# The decoded ground-truth cache (crab_eval/gt_cache.py) of this test session lives in a temporary directory,
# removed at exit: the suite never writes to ~/.cache and never reads a cache left by an earlier run.
_GT_CACHE = tempfile.TemporaryDirectory(prefix="crab-eval-test-gt-cache-")
os.environ["CRAB_EVAL_CACHE"] = _GT_CACHE.name
