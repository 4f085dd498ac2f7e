"""Views as server-side SVG, HTML and pictures (a `gr.HTML` runs no script): they take tensors and lists, never models.
One module per subject: `attention`, `inside`, `lm` (language-model views and charts), `tokens`, `training`,
`word_maps`."""
