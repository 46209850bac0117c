"""Small helpers over Textual widgets shared by the screens."""
