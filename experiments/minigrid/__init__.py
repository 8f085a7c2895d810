"""MiniGrid agents (PPO / A2C from torch-ac) whose memory is an LSTM or Recurrent Independent Mechanisms.

``train.py`` trains (and resumes) an agent on one grid; ``evaluate.py`` tests it on any grid,
typically a larger, unseen one; ``visualize.py`` renders its episodes with the active units
to a gif; ``demo.py`` is ``make demo``. Behind them: ``model.py`` (the actor-critic),
``agent.py``, ``envs.py`` and ``storage.py`` (the model directory). See README.md here.
"""
