"""Transformers on text, as data in and data out (no gradio): tokenizers (`tokenize`, `word_split`), attention
(`attention`), one block written out (`inside`), and the three families at work: decoder-only generation
(`generation`), encoder-only fill-mask and embeddings (`masked`), encoder-decoder text to text (`seq2seq`)."""
