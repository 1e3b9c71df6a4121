# what: (written by a learner helper who saw only the released notebook) parses the line with json.loads and checks the operands with isinstance(x, int), which lets JSON true/false through as 1 and 0.
# cell: sum_answer
# fails: sum_answer_malformed_requests
# (the rule it breaks, in the exercise's words: A request is a JSON **object** whose `"A"` and `"B"` are **integers** (JSON numbers without a fraction or exponent; JSON `true`/`false` are not integers).)
import json


def sum_answer(line):
    """{'Sum': A + B} for a valid request line (bytes, no b'\\n'), else {'Error': why}."""
    try:
        request = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return {"Error": "not UTF-8"}
    except ValueError:
        return {"Error": "not JSON"}
    if not isinstance(request, dict):
        return {"Error": "not a JSON object"}
    if "A" not in request or "B" not in request:
        return {"Error": "A and B are required"}
    a, b = request["A"], request["B"]
    if not isinstance(a, int) or not isinstance(b, int):
        return {"Error": "A and B must be integers"}
    return {"Sum": a + b}
