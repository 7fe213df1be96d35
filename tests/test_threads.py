import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from serendip.threads import limit_threads


def test_limit_threads_leaves_every_loaded_pool_at_one_thread() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS is loaded
    with threadpool_limits(limits=2):  # as a fresh process with several threads per pool
        limit_threads()
        limit_threads()  # idempotent
        assert threadpool_info() and all(lib["num_threads"] == 1 for lib in threadpool_info())
