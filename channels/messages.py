"""What the assistant says when it cannot answer normally. Every one of them repeats the
emergency numbers: the person writing may be in danger. Shared by channels/rest.py and
the nginx configuration (deploy/render_nginx.py), so the proxy says the same."""

EMERGENCY = "If you are in danger, call 911 now, or call or text 988."
TOO_FAST = f"You are sending messages faster than I can read them. Please wait a minute and try again. {EMERGENCY}"
TOO_LONG = f"That message is too long for me. Please send a shorter one. {EMERGENCY}"
CANNOT_ANSWER = (
    f"Sorry, something went wrong on my side and I could not answer. Please try again in a minute. {EMERGENCY}"
)
NO_ANSWER = f"Sorry, I could not do that just now. You can ask me another question. {EMERGENCY}"
