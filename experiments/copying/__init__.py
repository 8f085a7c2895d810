"""The copying and adding tasks (Goyal et al. 2019, section 4.1 and appendix)."""
