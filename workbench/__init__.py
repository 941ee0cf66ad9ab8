"""The trainers' workbench: a small web app, on its own port and bound to localhost, where
counsellors and content people review conversations, correct what the assistant
understood, and see how it is doing. It is never part of the public chat server.

`python -m workbench serve` (`make workbench`) starts it; `python -m workbench user NAME`
(`make workbench-user`) creates an account.
"""
