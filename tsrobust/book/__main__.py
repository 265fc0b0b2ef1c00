"""``python -m tsrobust.book``: the command line of :mod:`tsrobust.book.build`."""

import sys

from tsrobust.book.build import main

sys.exit(main())
