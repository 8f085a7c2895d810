"""The copying and adding tasks (Goyal et al. 2019, section 4.1 and appendix): train at T=50,
test at 100, 200 and 400.

``main.py`` trains and evaluates a RIM, LSTM or GRU; ``tasks.py`` generates the seeded data
and scores it; ``model.py`` puts an encoder and a decoder around the recurrent core.
"""
