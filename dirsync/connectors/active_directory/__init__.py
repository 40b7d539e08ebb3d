"""Active Directory on top of the LDAP family: objectGUID, flags, ranges, DirSync and USN reads."""
