select a.account_id, a.account_number, a.account_name
from {{ ref('stg_bc_account') }} a
