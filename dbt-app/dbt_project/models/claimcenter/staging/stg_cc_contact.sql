select
  ID as contact_id, PUBLICID as public_id, SUBTYPE as contact_type,
  coalesce(NAME, trim(coalesce(FIRSTNAME, '') || ' ' || coalesce(LASTNAME, ''))) as display_name,
  BATCH_ID as batch_id
from ({{ cda_current('claimcenter', 'cc_contact', ['PUBLICID', 'SUBTYPE', 'NAME', 'FIRSTNAME', 'LASTNAME']) }}) current_rows
