"""Sequential MNIST: train at 14x14, test at 16x16, 19x19 and 24x24 (Goyal et al. 2019, section 4.1).

``main.py`` trains (also under torchrun, with ``distributed.py``) and evaluates; ``data.py``
reads the IDX files and rescales the digits; ``model.py`` is the classifier;
``plot_activations.py`` draws which RIM units were active at each pixel.
"""
