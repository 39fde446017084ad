select
  ID as contact_id, PUBLICID as public_id, SUBTYPE as contact_type,
  -- a person has first/last names, a company only NAME
  coalesce(NAME, trim(coalesce(FIRSTNAME, '') || ' ' || coalesce(LASTNAME, ''))) as display_name,
  EMAILADDRESS1 as email, BATCH_ID as batch_id
from ({{ cda_current('policycenter', 'pc_contact', ['PUBLICID', 'SUBTYPE', 'NAME', 'FIRSTNAME', 'LASTNAME', 'EMAILADDRESS1']) }}) current_rows
