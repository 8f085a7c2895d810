"""MiniGrid agents (PPO / A2C from torch-ac) whose memory is an LSTM or Recurrent Independent Mechanisms."""
