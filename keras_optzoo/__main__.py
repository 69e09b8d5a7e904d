"""`python -m keras_optzoo ...` is the same as the `optzoo` command."""

from keras_optzoo.cli import main

raise SystemExit(main())
