-- Runs once, on first start of the postgres container (empty data volume).
-- One database per service, all owned by the onbehalf role.
CREATE DATABASE identity OWNER onbehalf;
CREATE DATABASE catalog OWNER onbehalf;
CREATE DATABASE cart OWNER onbehalf;
CREATE DATABASE orders OWNER onbehalf;
CREATE DATABASE audit OWNER onbehalf;
