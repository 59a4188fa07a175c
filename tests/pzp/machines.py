"""
Helpers for testing the proxy's state machines alone (as magic-wormhole's
C{test_machines.py} does): their transition tables, and starting one in a
given state.
"""


def transitions(machine) -> set:
    """
    The machine's transition table as C{(state, input, new state)} names:
    the edges its diagram in C{docs/} is drawn from.
    """
    return {
        (old.name, symbol, new.name)
        for old, symbol, new, outputs in machine.__automat_automaton__.allTransitions()
    }


def stateNamed(machine, name: str):
    """
    The state object of C{machine} called C{name}, to start a machine there.
    """
    [state] = [s for s in machine.__automat_automaton__.states() if s.name == name]
    return state
