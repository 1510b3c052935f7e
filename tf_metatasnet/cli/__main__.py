"""``python -m tf_metatasnet.cli``: the ``metatasnet`` command."""

import sys

from tf_metatasnet.cli import main

sys.exit(main())
