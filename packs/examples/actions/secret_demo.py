"""Shows get_secret(): reports whether api_token is set, and its length, without revealing it."""


def run(**parameters):
    # get_secret is provided by the worker; it returns None for an unknown name. In service
    # mode the pack's keys also arrive as parameters of the same name, taken and left here.
    token = get_secret("api_token")  # noqa: F821
    if token is None:
        return {"found": False}
    return {"found": True, "length": len(token), "masked": "*" * min(len(token), 8)}
