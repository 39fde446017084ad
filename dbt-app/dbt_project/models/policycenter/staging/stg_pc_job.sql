select
  ID as job_id, PUBLICID as public_id, JOBNUMBER as job_number, SUBTYPE as job_type,
  CLOSEDATE as closed_at, BATCH_ID as batch_id
from ({{ cda_current('policycenter', 'pc_job', ['PUBLICID', 'JOBNUMBER', 'SUBTYPE', 'CLOSEDATE']) }}) current_rows
