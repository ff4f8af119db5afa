{# Rebuild sets by meter: what a power model rebuilds when only some meters of a date changed.

   Each day's batch of power readings carries the late readings of the day before for about a quarter of the
   meters. Rebuilt by date, a daily build would redo that whole day for every meter; rebuilt by meter, it
   redoes those meters' day only. A power model whose rows of a meter on a date depend on that meter's data
   alone (its readings, its days, its profile) takes a rebuild set:

       {'whole': ['YYYY-MM-DD', ...], 'partial': {'YYYY-MM-DD': ['meter id', ...], ...}}

   every meter of the whole dates, and of each partial date the meters listed. changed_dates(...,
   meter_column='meter_id') returns one; None means every date (a full build), as for the date lists. A date
   where more than var('rebuild_meters_max') meters changed is rebuilt whole, and when a set's lists would
   hold more meter ids than that (partial dates with different meters each) its partial dates are rebuilt
   whole: the lists are written into the model's SQL (the partial dates that share their meters, as the days
   around a late batch do, share one list). The macros below also take a plain date list (every meter of those dates) and None. #}

{# The most meter ids a rebuild set lists (dbt_project.yml's var rebuild_meters_max). #}
{% macro rebuild_meters_max() -%}
    {{ return(var('rebuild_meters_max') | int) }}
{%- endmacro %}

{# A rebuild set from changed_dates' rows: (date text, meter id, or None for every meter of the date). #}
{% macro rebuild_from_rows(rows) -%}
    {%- set whole = [] -%}
    {%- set partial = {} -%}
    {%- for row in rows if row[0] is not none -%}
        {%- set day = row[0][:10] -%}
        {%- if row[1] is none -%}
            {%- do whole.append(day) -%}
        {%- else -%}
            {%- do partial.setdefault(day, []).append(row[1]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(rebuild_set(whole, partial)) }}
{%- endmacro %}

{# A rebuild set of `whole` dates and `partial` (date -> meters), tidied: a partial date that is also whole
   dropped, lists sorted without repeats, and every date whole when its distinct lists hold more than
   rebuild_meters_max meter ids. #}
{% macro rebuild_set(whole, partial) -%}
    {%- set whole = whole | unique | sort | list -%}
    {%- set tidy = {} -%}
    {%- set counted = [] -%}
    {%- for day, meters in partial.items() if day not in whole -%}
        {%- set listed = meters | unique | sort | list -%}
        {%- do tidy.update({day: listed}) -%}
        {%- if listed not in counted -%}
            {%- do counted.append(listed) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if counted | map('length') | sum > rebuild_meters_max() -%}
        {{ return({'whole': (whole + tidy.keys() | list) | unique | sort | list, 'partial': {}}) }}
    {%- endif -%}
    {{ return({'whole': whole, 'partial': tidy}) }}
{%- endmacro %}

{# The dates of a rebuild set, whole or partial (a date list for filters that read every meter of them:
   a lookback's history, a raw table's days); a date list or None is returned as it is. #}
{% macro rebuild_dates(rebuild) -%}
    {%- if rebuild is not mapping -%}
        {{ return(rebuild) }}
    {%- endif -%}
    {{ return((rebuild.whole + rebuild.partial.keys() | list) | unique | sort | list) }}
{%- endmacro %}

{# A rebuild set widened by `before` days before and `after` days after each date, per meter (the context a
   model reads around what it rebuilds, or the later days whose window holds a changed day). #}
{% macro widen_rebuild(rebuild, before=0, after=0) -%}
    {%- if rebuild is not mapping -%}
        {{ return(widen_dates(rebuild, before=before, after=after)) }}
    {%- endif -%}
    {%- set partial = {} -%}
    {%- for day, meters in rebuild.partial.items() -%}
        {%- for shifted in widen_dates([day], before=before, after=after) -%}
            {%- do partial.update({shifted: partial.get(shifted, []) + meters}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(rebuild_set(widen_dates(rebuild.whole, before=before, after=after), partial)) }}
{%- endmacro %}

{# A rebuild set with every date moved by `days` (negative: earlier). #}
{% macro shift_rebuild(rebuild, days) -%}
    {%- if rebuild is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set whole = [] -%}
    {%- set partial = {} -%}
    {%- for day in rebuild_dates(rebuild) -%}
        {%- set shifted = (modules.datetime.datetime.strptime(day, '%Y-%m-%d')
            + modules.datetime.timedelta(days=days)).strftime('%Y-%m-%d') -%}
        {%- if rebuild is mapping and day in rebuild.partial -%}
            {%- do partial.update({shifted: rebuild.partial[day]}) -%}
        {%- else -%}
            {%- do whole.append(shifted) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return({'whole': whole, 'partial': partial}) }}
{%- endmacro %}

{# True when a rebuild set (or date list) rebuilds nothing; None (every date) is not empty. #}
{% macro rebuild_is_empty(rebuild) -%}
    {{ return(rebuild is not none and rebuild_dates(rebuild) | length == 0) }}
{%- endmacro %}

{# A filter on (date_column, meter_column) for a rebuild set: true for None, false for nothing, else the
   dates' range (so that the warehouse skips old blocks) and the whole dates, or a partial date's meters (the
   partial dates that share their meters, as the days around a late batch do, in one list). #}
{% macro in_rebuild(date_column, rebuild, meter_column='meter_id') -%}
    {%- if rebuild is not mapping or not rebuild.partial -%}
        {{ in_build_dates(date_column, rebuild if rebuild is not mapping else rebuild.whole) }}
    {%- else -%}
        {%- set dates = rebuild_dates(rebuild) -%}
        {%- set groups = {} -%}
        {%- for day, meters in rebuild.partial.items() -%}
            {%- set key = meters | join(',') -%}
            {%- do groups.update({key: groups.get(key, []) + [day]}) -%}
        {%- endfor -%}
        ({{ date_column }} between cast('{{ dates[0] }}' as date) and cast('{{ dates[-1] }}' as date)
        and (
            {%- if rebuild.whole %}
            {{ date_column }} in ({% for day in rebuild.whole %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %})
            {%- else %}
            false
            {%- endif %}
            {%- for key, days in groups.items() %}
            or ({{ date_column }} in ({% for day in days | sort %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %})
                and {{ in_id_list(meter_column, rebuild.partial[days[0]]) }})
            {%- endfor %}
        ))
    {%- endif -%}
{%- endmacro %}

{# The rebuild set and the slots_before last slots of the day before each of its dates and the slots_after
   first slots of the day after, per meter (a filter on a local date, its 15-minute slot, 0 to
   slots_per_day - 1, and the meter): the context a model's windows need around what it rebuilds, not whole
   days. None: true; nothing: false. #}
{% macro in_rebuild_with_margins(date_column, slot_column, rebuild, slots_before, slots_after,
                                 meter_column='meter_id', slots_per_day=96) -%}
    {%- if rebuild is none -%}
        true
    {%- elif rebuild_is_empty(rebuild) -%}
        false
    {%- else -%}
        {%- if slots_before >= slots_per_day or slots_after >= slots_per_day -%}
            {{ exceptions.raise_compiler_error(
                "in_rebuild_with_margins: margins of " ~ slots_before ~ " and " ~ slots_after
                ~ " slots reach beyond the next day; widen the dates instead") }}
        {%- endif -%}
        ({{ in_rebuild(date_column, rebuild, meter_column) }}
        or ({{ in_rebuild(date_column, shift_rebuild(rebuild, -1), meter_column) }} and {{ slot_column }} >= {{ slots_per_day - slots_before }})
        or ({{ in_rebuild(date_column, shift_rebuild(rebuild, 1), meter_column) }} and {{ slot_column }} < {{ slots_after }}))
    {%- endif -%}
{%- endmacro %}

{# `column in (the ids)` (a partial date's meters, the enterprises a risk build rebuilds), in the form each
   warehouse evaluates fast inside an OR: Postgres hashes a long IN list; DuckDB turns an IN list into a join
   only where it stands alone, and inside an OR compares each row with every id in turn (at full scale a
   partial date's 3,635 meters took 12 s to filter 2.7 M scored readings, against 0.06 s as a subquery, which
   it joins). #}
{% macro in_id_list(column, ids) -%}
    {{ return(adapter.dispatch('in_id_list', 'emergency_dw')(column, ids)) }}
{%- endmacro %}

{% macro default__in_id_list(column, ids) -%}
    {{ column }} in ({% for id in ids %}'{{ id | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro duckdb__in_id_list(column, ids) -%}
    {{ column }} in (select unnest([{% for id in ids %}'{{ id | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %}]))
{%- endmacro %}
