{#
  Build log: every fenced invocation inserts one CONTROL.BUILDS row after the fence check passed
  (STATUS RUNNING) and closes it in on-run-end, so the warehouse itself can say how many builds a
  batch had. A refused build (STALE_FENCE, ALREADY_BUILT) writes nothing, here included.
#}


{% macro build_var(name) %}
  {% set patterns = {
    'pipeline': '[a-z][a-z0-9-]{0,22}[a-z0-9]',
    'batch_id': '[a-z][a-z0-9-]*-[0-9]{8}T[0-9]{6}Z',
    'attempt': '[0-9]{1,9}',
    'run_id': '[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}',
    'fence_region': '[a-z0-9][a-z0-9-]{0,31}',
    'fence_epoch': '[0-9]{1,18}',
  } %}
  {% set value = var(name, none) %}
  {% if value is none or not modules.re.fullmatch(patterns[name], value | string | trim) %}
    {{ exceptions.raise_compiler_error("BUILD_VARS: var " ~ name ~ " is " ~ ("missing" if value is none else "'" ~ value ~ "'")
       ~ "; it must match " ~ patterns[name] ~ ". The dbt app passes batch_id, pipeline, attempt, run_id, fence_region and fence_epoch.") }}
  {% endif %}
  {{ return(value | string | trim) }}
{% endmacro %}

{% macro builds_relation() %}
  {{ return(target.database ~ "." ~ var('control_schema') ~ ".BUILDS") }}
{% endmacro %}

{#
  Exactly once at the sink: the warehouse is strongly consistent and shared by both regions, so it
  refuses a second build of a (pipeline, batch) that already has a SUCCEEDED row, whatever the
  DynamoDB replicas believe (a stale FAILED record won at a heal, a LOST run that had built). The
  marker ALREADY_BUILT tells the app the batch is built (it records the run SUCCEEDED, alreadyBuilt).
  An operator forces a rebuild with the var rebuild: true (docs/fence-and-locks.md).
#}
{% macro check_not_built() %}
  {% if execute and fence_applies() and not (var('rebuild', false) | string | lower in ('true', '1', 'yes')) %}
    {% set pipeline = build_var("pipeline") %}
    {% set batch_id = build_var("batch_id") %}
    {% set rows = run_query("select RUN_ID, REGION, EPOCH, FINISHED_AT from " ~ builds_relation()
       ~ " where PIPELINE = '" ~ pipeline ~ "' and BATCH_ID = '" ~ batch_id ~ "' and STATUS = 'SUCCEEDED'"
       ~ " order by FINISHED_AT limit 1").rows %}
    {% if rows | length > 0 %}
      {{ exceptions.raise_compiler_error("ALREADY_BUILT: " ~ pipeline ~ " batch " ~ batch_id ~ " was built by run "
         ~ rows[0][0] ~ " (region " ~ rows[0][1] ~ ", epoch " ~ (rows[0][2] | int) ~ ", finished " ~ rows[0][3]
         ~ "). This build must not write; pass --vars '{rebuild: true}' to rebuild it deliberately.") }}
    {% endif %}
  {% endif %}
{% endmacro %}

{% macro record_build_start() %}
  {% if execute and fence_applies() %}
    {% set sql %}
      insert into {{ builds_relation() }}
        (INVOCATION_ID, COMMAND, PIPELINE, BATCH_ID, ATTEMPT, RUN_ID, REGION, EPOCH, STARTED_AT, STATUS)
      values (
        '{{ invocation_id }}', '{{ flags.WHICH }}', '{{ build_var("pipeline") }}', '{{ build_var("batch_id") }}',
        {{ build_var("attempt") }}, '{{ build_var("run_id") }}', '{{ build_var("fence_region") }}',
        {{ build_var("fence_epoch") }}, {{ dbt.current_timestamp() }}, 'RUNNING'
      )
    {% endset %}
    {% do run_query(sql) %}
  {% endif %}
{% endmacro %}

{% macro record_build_end(results) %}
  {% if execute and fence_applies() %}
    {% set failed = results | selectattr('status', 'in', ['error', 'fail', 'runtime error', 'skipped']) | list %}
    {% set sql %}
      update {{ builds_relation() }}
      set FINISHED_AT = {{ dbt.current_timestamp() }},
          STATUS = '{{ "FAILED" if failed else "SUCCEEDED" }}'
      where INVOCATION_ID = '{{ invocation_id }}'
    {% endset %}
    {% do run_query(sql) %}
  {% endif %}
{% endmacro %}
