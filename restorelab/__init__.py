__version__ = "0.1.0"

# Before anything imports torch: OpenMP threads that spin while waiting make 2-thread CPU training 10-40x slower as soon
# as another process is busy (see restorelab.core). Every `import restorelab.x` runs this file first, even when the
# module itself imports torch before restorelab.core (restorelab.all does). An explicit OMP_WAIT_POLICY wins.
import os as _os, sys as _sys
if 'torch' not in _sys.modules: _os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
del _os, _sys
