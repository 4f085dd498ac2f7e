"""The instructor's side of the workshop: `python -m playground.workshop check` (does every preset resolve and every
lesson link open and run here, offline?) and `lessons --write` (the README's table of lessons). It sits above the UI:
it builds the app to read each tab's inputs and runs each lesson through the tab's own request and handler. The
lessons themselves are `playground.lessons`."""
