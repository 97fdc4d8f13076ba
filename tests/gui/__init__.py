"""gui: the window offscreen, and the user's own files it reads back."""
