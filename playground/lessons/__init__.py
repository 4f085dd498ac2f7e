"""What the Start path teaches, below the UI (no gradio): the lessons with their predict-then-reveal questions
(`path`), lesson links that open a tab with its inputs filled (`links`: parse and check), and guess the next token
(`game`). The tabs show them; the instructor's check (`python -m playground.workshop check`) runs them."""
