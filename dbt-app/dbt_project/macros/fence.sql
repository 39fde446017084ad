{#
  Sink-side fence: the warehouse is shared by both regions, so it is the one place a stale region
  cannot get past. CONTROL.FENCE holds one row (REGION, EPOCH, CHANGED_AT); a build whose vars
  fence_region / fence_epoch do not name it aborts before any model runs. The marker STALE_FENCE
  lets the app (and tests) tell this refusal from any other failure.
#}

{# Every command that runs hooks is checked (fail-safe), except ones that never write: hooks do not
   run for those today, and listing them keeps a future dbt that does from demanding fence vars. #}
{% macro fence_applies() %}
  {{ return(flags.WHICH not in ('compile', 'parse', 'list', 'ls', 'show', 'docs', 'debug', 'deps', 'clean')) }}
{% endmacro %}

{% macro stale_fence(message) %}
  {{ exceptions.raise_compiler_error("STALE_FENCE: " ~ message ~ ". This build must not write; the fence row in "
     ~ target.database ~ "." ~ var('control_schema') ~ ".FENCE names the region allowed to build.") }}
{% endmacro %}

{% macro check_fence() %}
  {% if execute and fence_applies() %}
    {% set region = var('fence_region', none) %}
    {% set epoch = var('fence_epoch', none) %}
    {% if region is none or (region | string | trim) == '' %}
      {% do stale_fence("var fence_region is missing (pass --vars '{fence_region: <region>, fence_epoch: <n>}')") %}
    {% endif %}
    {% if epoch is none or (epoch | string | trim) == '' %}
      {% do stale_fence("var fence_epoch is missing (pass --vars '{fence_region: <region>, fence_epoch: <n>}')") %}
    {% endif %}
    {% if not modules.re.fullmatch('[0-9]{1,18}', epoch | string | trim) %}
      {% do stale_fence("var fence_epoch must be a whole number, got '" ~ epoch ~ "'") %}
    {% endif %}

    {% set fence = adapter.get_relation(database=target.database, schema=var('control_schema'), identifier='FENCE') %}
    {% if fence is none %}
      {% do stale_fence("fence table " ~ var('control_schema') ~ ".FENCE does not exist") %}
    {% endif %}
    {% set rows = run_query("select REGION, EPOCH, CHANGED_AT from " ~ fence).rows %}
    {% if rows | length != 1 %}
      {% do stale_fence("fence table holds " ~ (rows | length) ~ " rows, expected exactly 1") %}
    {% endif %}
    {% set row = rows[0] %}
    {% if (row[0] | string) != (region | string | trim) or (row[1] | int) != (epoch | string | trim | int) %}
      {% do stale_fence("this build carries region=" ~ region ~ " epoch=" ~ epoch ~ ", the fence says region="
         ~ row[0] ~ " epoch=" ~ (row[1] | int) ~ " (changed at " ~ row[2] ~ ")") %}
    {% endif %}
    {% do log("fence ok: region=" ~ row[0] ~ " epoch=" ~ (row[1] | int), info=True) %}
  {% endif %}
{% endmacro %}
