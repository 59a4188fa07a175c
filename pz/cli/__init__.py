"""
The command line tools: C{pzctl}'s dispatcher (L{pz.cli.main}), what a verb
is (L{pz.cli.verb}), and the verb that belongs to the core (L{pz.cli.wait});
the hub's and the device's verbs live beside them, in C{pzh/commands.py},
C{pzp/commands.py} and C{pzp/meshcommands.py}.
"""
