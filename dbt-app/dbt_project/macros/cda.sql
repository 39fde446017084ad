{#
  Current state of one CDA table from its change log (BASE.<TABLE>, loaded insert-only by
  glue/lake_to_snowflake.py). The newest change record per ID wins, ordered by the CDA folder
  (CDA_TIMESTAMP) then the change sequence (GWCBI___SEQVAL_HEX, fixed-width hex so string order is
  sequence order). GWCBI___OPERATION follows change-data-capture codes: 1 delete, 2 insert,
  3 update before-image, 4 update after-image; before-images are skipped and an ID whose newest
  record is a delete is gone.
#}
{% macro cda_current(source_name, table_name, columns) %}
  select {{ columns | join(', ') }}, ID, CDA_TIMESTAMP, BATCH_ID
  from (
    select
      {{ columns | join(', ') }}, ID, CDA_TIMESTAMP, BATCH_ID, GWCBI___OPERATION,
      row_number() over (partition by ID order by CDA_TIMESTAMP desc, GWCBI___SEQVAL_HEX desc) as change_rank
    from {{ source(source_name, table_name) }}
    where GWCBI___OPERATION <> 3
  ) changes
  where change_rank = 1 and GWCBI___OPERATION <> 1
{% endmacro %}
