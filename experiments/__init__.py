"""The paper's experiments, built on rim_core, to run in a clone (the wheel ships rim_core alone).

* ``copying/``: the copying and adding tasks, trained at T=50 and tested at longer spans;
* ``mnist/``: sequential MNIST, trained at 14x14 and tested at larger sizes;
* ``minigrid/``: PPO / A2C agents with LSTM or RIM memory, tested on larger, unseen grids;
* what they share: ``common.py`` (atomic checkpoints, RNG state, CLI errors), ``recurrent.py``
  (the RIM / LSTM / GRU core of the copying and MNIST models), ``training.py`` (their run
  folders, checkpoints and signals) and ``graphed_step.py`` (their ``--cuda-graph`` step).
"""
