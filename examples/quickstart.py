"""Compare optimizers on scikit-learn's digits: same model, same start, same batches.

    python examples/quickstart.py                      # TensorFlow backend
    KERAS_BACKEND=jax python examples/quickstart.py    # or jax, torch

Prints final train loss, test accuracy and ms/step per optimizer; about a
minute on two CPU cores. `optzoo compare` runs the same thing with options.
"""

from keras_optzoo.quickstart import main

if __name__ == "__main__":
    main()
