"""Compare optimizers on scikit-learn's digits: same model, same start, same batches.

    python examples/quickstart.py                      # TensorFlow backend
    KERAS_BACKEND=jax python examples/quickstart.py    # or jax, torch
    python examples/quickstart.py --optimizers adam,lion --epochs 5

This is `optzoo compare` (any of its options can be added): sgd, momentum,
adam, adamw, adabelief and lion train a 64-64 MLP for 20 epochs, about a
minute on two CPU cores. It prints a table of final train loss, test accuracy,
steps to reach the target loss, ms/step and optimizer state bytes, and writes
results.md, results.csv, curves.png, history.csv and TensorBoard logs to
optzoo_results/.
"""

import sys

from keras_optzoo.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["compare", *sys.argv[1:]]))
