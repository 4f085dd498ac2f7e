"""The workshop: a guided path of lessons with predict-then-reveal questions, lesson links that open a tab
with its inputs filled, the guess-the-next-token game, and an instructor's offline check
(`python -m playground.workshop check`). Compute and data only: the Start tab (`ui/start_tab.py`) shows it."""
