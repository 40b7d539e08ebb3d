"""Generic LDAP / OpenLDAP: the session, our BER reader, complete and incremental reads."""
