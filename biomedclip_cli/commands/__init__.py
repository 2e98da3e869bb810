"""One module per bmclip command: parse options, call the layer below, render the result."""
