"""The Textual app (issue 5). Nothing here imports torch, timm or torchvision: the app must
start fast and work on a box whose GPU stack is broken."""
