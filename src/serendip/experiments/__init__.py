"""Online experiments: sticky assignment, A/B statistics, interleaving, and a simulator of users
with known preferences that proves them."""
