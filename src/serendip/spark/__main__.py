"""`python -m serendip.spark`: see `serendip.spark.submit`."""

import sys

from serendip.spark.submit import main

sys.exit(main())
