"""
Tests for the Mesh portal: its messages, log store, transactions, HTTP
binding, client, replica, zone enrolment and C{twistd meshportal}.
"""
