{# Which local dates an incremental model rebuilds: what changed since its last build, however old (DESIGN
   section 5: a department's late export or a backfill of last year reaches the marts).

   Every row of such a model carries _built_at, the start of the dbt invocation that built it
   (run_started_at). A model's last build is the latest _built_at of its own rows; an upstream row built
   since then marks its date as touched (built_upstreams: relations with _built_at). For staging relations
   (loaded_upstreams) a row loaded after the last build started, less load_margin() (var
   load_commit_margin_minutes), marks its date (a batch that committed while a build ran is taken in again
   rather than missed: a rebuild is idempotent). `queries`
   are further selects of one date column, for what the model reads through a join (the received date of
   an incident whose dispatch record was loaded since); `last_build_started()` is their watermark.
   Upstream relations name their date `date_column`.

   The touched dates are widened by what depends on them:
   - following_days: the dates after (the first reading of a day steps from the last of the day before);
   - preceding_days: the dates before (a 2-hour window at the end of a day reads the next day's readings);
   - window_days: the dates whose window (the days before them) holds a touched date.

   Returns None on a full build, or when the model was built before it carried _built_at (build every
   date), else a sorted list of 'YYYY-MM-DD' strings, empty when
   nothing changed (a no-op build costs one query per model). The query runs when the model's SQL is
   compiled, and again when the incremental strategy (replace_build_dates) deletes the rows of those dates,
   before it deletes anything; both count only batches stamped before this build started
   (loaded_since_last_build), so the delete and the insert agree while loads go on.

   With meter_column (the upstreams' meter id column, the same name in each), it returns a rebuild set by
   meter instead of a list (rebuild_sets.sql): the dates where few meters changed list those meters, and the
   widening is per meter. #}
{% macro changed_dates(upstreams=[], loaded_upstreams=[], queries=[], date_column='reading_date',
                       following_days=0, preceding_days=0, window_days=0, meter_column=none) -%}
    {%- if not execute or model.resource_type != 'model' or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not relations_built([this] + upstreams + loaded_upstreams) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set watermark = built_watermark() -%}
    {%- if watermark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set keys = "cast(" ~ date_column ~ " as varchar)" ~ ((", " ~ meter_column) if meter_column else "") -%}
    {%- set parts = [] -%}
    {%- for upstream in upstreams -%}
        {%- do parts.append("select distinct " ~ keys ~ " from " ~ upstream
            ~ " where _built_at > " ~ last_build_started()) -%}
    {%- endfor -%}
    {%- for upstream in loaded_upstreams -%}
        {%- do parts.append("select distinct " ~ keys ~ " from " ~ upstream
            ~ " where " ~ loaded_since_last_build('_loaded_at', last_build_started())) -%}
    {%- endfor -%}
    {%- if meter_column -%}
        {%- if queries -%}
            {{ exceptions.raise_compiler_error("changed_dates: queries select dates only; leave meter_column out") }}
        {%- endif -%}
        {%- set by_meter -%}
            select distinct changed_date, case when meters <= {{ rebuild_meters_max() }} then changed_meter end
            from (
                select changed_date, changed_meter, count(*) over (partition by changed_date) as meters
                from ({{ parts | join(' union ') }}) as changed (changed_date, changed_meter)
            ) as counted
        {%- endset -%}
        {{ return(widen_rebuild(
            rebuild_from_rows(run_query(by_meter).rows), before=preceding_days, after=following_days + window_days)) }}
    {%- endif -%}
    {%- for query in queries -%}
        {%- do parts.append("select distinct cast(changed_date as varchar) from (" ~ query ~ ") as changed (changed_date)") -%}
    {%- endfor -%}
    {%- set touched = [] -%}
    {%- for row in run_query_hash_joined(parts | join(' union ')).rows if row[0] is not none -%}
        {%- do touched.append(row[0][:10]) -%}
    {%- endfor -%}
    {{ return(widen_dates(touched, before=preceding_days, after=following_days + window_days)) }}
{%- endmacro %}

{# run_query(sql), on Postgres with the planner's nested loops off for that one query (in the transaction
   dbt holds open; the setting as it was after it). changed_dates' queries join staging views that pick each record's latest version by a window:
   the planner, estimating one row from the filters on top of the window, joined the incidents whose dispatch
   records were loaded since the last build to the alerts as a nested loop that ran the alerts' views again
   for each of them: 54 s a query at full scale, twice a daily build (fct_incident_response); as a hash
   join, 0.3 s. #}
{% macro run_query_hash_joined(sql) -%}
    {{ return(adapter.dispatch('run_query_hash_joined', 'emergency_dw')(sql)) }}
{%- endmacro %}

{% macro default__run_query_hash_joined(sql) -%}
    {{ return(run_query(sql)) }}
{%- endmacro %}

{% macro postgres__run_query_hash_joined(sql) -%}
    {%- if not execute -%}
        {{ return(run_query(sql)) }}
    {%- endif -%}
    {%- set previous = run_query("select current_setting('enable_nestloop')").rows[0][0] -%}
    {%- do run_query("set local enable_nestloop = off") -%}
    {%- set result = run_query(sql) -%}
    {%- do run_query("set local enable_nestloop = " ~ previous) -%}
    {{ return(result) }}
{%- endmacro %}

{# The latest _built_at of this model's rows, as text: when its last build started. None when the model was
   built before it carried _built_at, or holds no row (then it rebuilds everything, once). #}
{% macro built_watermark() -%}
    {%- if '_built_at' not in adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query("select cast(max(_built_at) as varchar) from " ~ this).rows[0][0]) }}
{%- endmacro %}

{# How long before a model's last build started a batch may have been stamped and still committed after it
   (SQL interval): dbt_project.yml's var load_commit_margin_minutes. #}
{% macro load_margin() -%}
    interval '{{ var('load_commit_margin_minutes') | int }} minutes'
{%- endmacro %}

{# Rows loaded since the model's last build (SQL condition on `column`, a _loaded_at): stamped after the
   last build started (`last_started`, SQL) less load_margin(), and no later than this build started. The
   bound makes the dates a build selects (its SQL, compiled first) and the dates it deletes (its
   incremental strategy, after the select) agree while loads go on: a batch stamped after this build
   started is the next build's. #}
{% macro loaded_since_last_build(column, last_started) -%}
    ({{ column }} > {{ last_started }} - {{ load_margin() }} and {{ column }} <= {{ built_at() }})
{%- endmacro %}

{# The start of this model's last build (SQL): the watermark of changed_dates' queries. #}
{% macro last_build_started() -%}
    (select max(_built_at) from {{ this }})
{%- endmacro %}

{# What each power model rebuilds (changed_dates), in one place for its SQL and its incremental strategy
   (meta build_dates). The models whose rows of a meter on a date depend on that meter's data alone take a
   rebuild set by meter (meter_column; rebuild_sets.sql); the anomaly intervals and events (a cable, an
   enterprise's meters) and the data-quality mart (a feed's whole day) rebuild whole dates. #}
{% macro power_model_dates() -%}
    {%- if not execute or model.resource_type != 'model' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if model.name == 'int_power_readings_sequenced' -%}
        {{ return(changed_dates(
            loaded_upstreams=[ref('stg_power__power_load_readings')], following_days=1, meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_meter_days' -%}
        {{ return(changed_dates([ref('int_power_readings_sequenced')], meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_meter_day_context' -%}
        {{ return(changed_dates(
            [ref('int_power_meter_days')],
            window_days=seed_parameter('anomaly_thresholds', 'baseline', 'lookback_days', 56) | int,
            meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_usual_profiles' -%}
        {{ return(changed_dates([ref('int_power_meter_day_context')], meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_readings_scored' -%}
        {{ return(changed_dates(
            [ref('int_power_readings_sequenced'), ref('int_power_usual_profiles'), ref('int_power_meter_day_context')],
            meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_meter_day_scores' -%}
        {{ return(changed_dates([ref('int_power_readings_scored')], meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_meter_day_thresholds' -%}
        {{ return(changed_dates(
            [ref('int_power_meter_day_scores')],
            window_days=seed_parameter('anomaly_thresholds', 'abnormal_fluctuation', 'adaptive_days', 28) | int,
            meter_column='meter_id')) }}
    {%- elif model.name == 'int_power_anomaly_intervals' -%}
        {{ return(changed_dates(
            [ref('int_power_readings_scored'), ref('int_power_meter_day_thresholds')],
            loaded_upstreams=[ref('stg_power__cable_temperature_readings')], following_days=1)) }}
    {%- elif model.name == 'int_power_anomaly_events' -%}
        {{ return(changed_dates([ref('int_power_anomaly_intervals')], preceding_days=1)) }}
    {%- elif model.name == 'fct_power_data_quality' -%}
        {#- a reading's episodes may start the day before (a gap or an offline run across midnight); a meter day's
            context and threshold are that day's alone #}
        {{ return(union_dates(
            changed_dates([ref('int_power_readings_sequenced')], preceding_days=1),
            changed_dates([ref('int_power_meter_day_context'), ref('int_power_meter_day_thresholds')]))) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("power_model_dates does not know the model " ~ model.name) }}
    {%- endif -%}
{%- endmacro %}

{# The window parameters of int_power_readings_scored (seed anomaly_thresholds), read once for its SQL and for
   its reach (scored_reach, which its incremental strategy calls too): a dict of whole intervals. #}
{% macro scored_windows() -%}
    {%- set windows = {} -%}
    {%- for name, rule, parameter, placeholder in [
        ('window', 'abnormal_fluctuation', 'window_intervals', 8),
        ('tolerance', 'abnormal_fluctuation', 'tolerance_intervals', 2),
        ('step_tolerance', 'surge', 'tolerance_intervals', 2),
        ('peak_intervals', 'abnormal_fluctuation', 'peak_intervals', 4),
        ('min_readings', 'abnormal_fluctuation', 'window_min_readings', 7),
        ('rise_reach', 'abnormal_fluctuation', 'rise_edge_reach_intervals', 0),
        ('drop_reach', 'abnormal_fluctuation', 'drop_edge_reach_intervals', 4),
    ] -%}
        {%- do windows.update({name: seed_parameter('anomaly_thresholds', rule, parameter, placeholder) | int}) -%}
    {%- endfor -%}
    {{ return(windows) }}
{%- endmacro %}

{# How far int_power_readings_scored's scores of a reading read, in 15-minute intervals: [before, after].
   Its edges and tolerances reach that far, then their windows' sums (scored_windows, or `windows` when the
   caller has read them). #}
{% macro scored_reach(windows=none) -%}
    {%- set w = windows if windows is not none else scored_windows() -%}
    {%- set reach = [w.rise_reach, w.drop_reach] | max -%}
    {%- set before = [w.rise_reach, w.drop_reach, w.tolerance, w.step_tolerance] | max
        + [w.window + 1, w.peak_intervals, 3] | max -%}
    {%- set after = [w.tolerance, w.step_tolerance, w.window - 1 + reach] | max + [2 * w.window - 1, 2] | max -%}
    {{ return([before, after]) }}
{%- endmacro %}

{# The rows int_power_readings_scored rebuilds (meta build_dates, read by replace_build_dates): every reading
   of the dates whose readings, usual profiles or context changed (power_model_dates), and the readings
   around them whose scores read into those dates: the last `after` intervals of the day before (scored_reach)
   and the first `before` of the day after, not those whole days. None on a full build. #}
{% macro scored_rebuilt_rows() -%}
    {%- set rebuild = power_model_dates() -%}
    {%- if rebuild is none or rebuild_is_empty(rebuild) -%}
        {{ return(rebuild_dates(rebuild)) }}
    {%- endif -%}
    {%- set reach = scored_reach() -%}
    {{ return(in_rebuild_with_margins('reading_date', 'slot_of_day', rebuild, reach[1], reach[0])) }}
{%- endmacro %}

{# The dates each response mart rebuilds (changed_dates), in one place for its SQL and its incremental
   strategy (meta build_dates). Both also rebuild a date whose incident count disagrees with what they
   read: a cheap check (one count per date) that catches what no watermark shows, an incident moved to
   another date or a re-delivered batch with fewer calls. #}
{% macro response_model_dates() -%}
    {%- if not execute or model.resource_type != 'model' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if model.name == 'fct_incident_response' -%}
        {%- set alerts = ref('int_alerts_unioned') -%}
        {%- set dispatches = ref('stg_yjj__dispatch_records') -%}
        {{ return(changed_dates(
            loaded_upstreams=[alerts],
            queries=[
                "select alerts.received_date from " ~ alerts ~ " as alerts inner join " ~ dispatches
                ~ " as dispatches on dispatches.incident_id = alerts.incident_id"
                ~ " where " ~ loaded_since_last_build('dispatches._loaded_at', last_build_started()),
                counts_differ(this, 'count(*)', alerts, 'count(*)', 'received_date'),
            ],
            date_column='received_date')) }}
    {%- elif model.name == 'agg_response_times_daily' -%}
        {%- set incidents = ref('fct_incident_response') -%}
        {{ return(changed_dates(
            upstreams=[incidents],
            queries=[counts_differ(this, 'sum(incident_count)', incidents, 'count(*)', 'received_date')],
            date_column='received_date')) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("response_model_dates does not know the model " ~ model.name) }}
    {%- endif -%}
{%- endmacro %}

{# A select of the dates on which `built` and `source` disagree on a count (either may lack the date). #}
{% macro counts_differ(built, built_count, source, source_count, date_column) -%}
    select coalesce(built.{{ date_column }}, source.{{ date_column }})
    from (select {{ date_column }}, {{ built_count }} as n from {{ built }} group by {{ date_column }}) as built
    full outer join (select {{ date_column }}, {{ source_count }} as n from {{ source }} group by {{ date_column }}) as source
        on built.{{ date_column }} = source.{{ date_column }}
    where built.n is distinct from source.n
{%- endmacro %}

{# A filter on a date column for the dates changed_dates returned: true on a full build (None), false
   for no date, else the range (so that the warehouse skips old blocks) and the list. #}
{% macro in_build_dates(column, dates) -%}
    {%- if dates is none -%}
        true
    {%- elif dates | length == 0 -%}
        false
    {%- else -%}
        ({{ column }} between cast('{{ dates[0] }}' as date) and cast('{{ dates[-1] }}' as date)
        and {{ column }} in ({% for day in dates %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %}))
    {%- endif -%}
{%- endmacro %}

{# The same dates as a range of the timestamp their local date is taken from (the first's start to the day
   after the last), for a filter on a staging view of a big raw table beside in_build_dates: on Postgres an
   index on the raw timestamp answers it, and a build reads the days it rebuilds, not every day ever loaded.
   None: true; no date: false. #}
{% macro in_build_days(timestamp_column, dates) -%}
    {%- if dates is none -%}
        true
    {%- elif dates | length == 0 -%}
        false
    {%- else -%}
        {%- set last = modules.datetime.datetime.strptime(dates[-1], '%Y-%m-%d') -%}
        {%- set after = (last + modules.datetime.timedelta(days=1)).strftime('%Y-%m-%d') -%}
        ({{ timestamp_column }} >= {{ local_day_start(dates[0]) }} and {{ timestamp_column }} < {{ local_day_start(after) }})
    {%- endif -%}
{%- endmacro %}

{# The column every incremental model carries: when the dbt invocation that built the row started (UTC), to
   the microsecond, as the loads stamp _loaded_at (a batch stamped within the second before a build started
   is that build's, not the next one's). #}
{% macro built_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00' as timestamp with time zone)
{%- endmacro %}

{# A select of the readings of `relation` (a CTE with meter_id, reading_date, reading_at, reading_state) of
   `whole` (a rebuild set or date list; None: every reading), and of `ends` (the same, with the days around
   them) outside `whole` only each meter's last reading of a day and, with_last_read, its last reading not
   offline: what the lags and running maxima of the next day's first readings read of the day before (the
   same values), without sorting that whole day into the window. #}
{% macro readings_with_day_ends(relation, whole, ends, with_last_read=false) -%}
    select * from {{ relation }}
    where {{ in_rebuild('reading_date', whole) }}
    {%- if whole is not none and ends is not none %}
    union all
    select {{ relation }}.*
    from {{ relation }}
    inner join (
        select
            meter_id,
            reading_date,
            max(reading_at) as last_reading_at
            {%- if with_last_read %},
            max(case when reading_state <> 'offline' then reading_at end) as last_read_at
            {%- endif %}
        from {{ relation }}
        where {{ in_rebuild('reading_date', ends) }}
            and not {{ in_rebuild('reading_date', whole) }}
        group by meter_id, reading_date
    ) as day_ends
        on {{ relation }}.meter_id = day_ends.meter_id
        and {{ relation }}.reading_date = day_ends.reading_date
        and (
            {{ relation }}.reading_at = day_ends.last_reading_at
            {%- if with_last_read %}
            or {{ relation }}.reading_at = day_ends.last_read_at
            {%- endif %}
        )
    {%- endif %}
{%- endmacro %}

{# Two date lists together, sorted; None (every date) when either is None. #}
{% macro union_dates(dates, other) -%}
    {%- if dates is none or other is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return((dates + other) | unique | sort | list) }}
{%- endmacro %}

{# The build dates widened by `before` days before and `after` days after each (the context a model reads
   around the dates it rebuilds); None stays None. #}
{% macro widen_dates(dates, before=0, after=0) -%}
    {%- if dates is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set widened = [] -%}
    {%- for text in dates -%}
        {%- set day = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
        {%- for offset in range(-before, after + 1) -%}
            {%- set shifted = (day + modules.datetime.timedelta(days=offset)).strftime('%Y-%m-%d') -%}
            {%- if shifted not in widened -%}
                {%- do widened.append(shifted) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(widened | sort) }}
{%- endmacro %}

{# What the risk models rebuild (int_enterprise_risk_points; fct_enterprise_risk_daily follows it): a
   select of (enterprise_id, from_date, to_date), an enterprise_id null meaning every enterprise, built from
   what changed since the model's last build, however old:
   - the dates whose power readings were (re)sequenced (their meter days rebuilt: 96 times fewer rows to
     read than the readings): the risk dates themselves;
   - the meter days rescored or cable readings loaded: the risk dates whose monitoring window holds them
     (an event may start the day before);
   - weather warnings loaded: the dates they were in force;
   - inspection hazards loaded (new or updated): that enterprise from the day the hazard was found;
   - a new version of an enterprise's safety profile, registry entry or special equipment, or of a
     geohazard point in a town it was ever registered in: that enterprise from the version's local date on
     (each is read in the version in force on the risk date), or on every date if it is the record's earliest
     version. A source must move updated_at when a record changes.
   None on a full build or before the model carried _built_at (rebuild everything). #}
{% macro risk_rebuild_sets() -%}
    {%- if not execute or model.resource_type != 'model' or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set meter_days = ref('int_power_meter_days') -%}
    {%- set day_scores = ref('int_power_meter_day_scores') -%}
    {%- set cables = ref('stg_power__cable_temperature_readings') -%}
    {%- set warnings = ref('stg_qxj__weather_warnings') -%}
    {%- set hazards = ref('stg_yjj__hazard_inspections') -%}
    {%- set registry = ref('stg_amr__enterprise_registry_versions') -%}
    {%- set parameters = ref('risk_parameters') -%}
    {%- if not relations_built([this, meter_days, day_scores, cables, warnings, hazards, registry, parameters]) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set watermark = built_watermark() -%}
    {%- if watermark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set built_since = "cast('" ~ watermark ~ "' as timestamp with time zone)" -%}
    {%- set loaded_since = built_since ~ " - " ~ load_margin() -%}
    {%- set snapshot_versions = [] -%}
    {#- A snapshot record's new version (not held already as that day's version) is in force from its
        local date (until the next version: rebuilding on from there is more than changed, and idempotent),
        or from the first date if it is the record's earliest version (which stands for the dates before
        it: versions_in_force). -#}
    {%- for department, feed, key, owner in [
        ('yjj', 'enterprise_safety_profiles', 'enterprise_id', 'enterprise_id'),
        ('amr', 'enterprise_registry', 'enterprise_id', 'enterprise_id'),
        ('amr', 'special_equipment', 'equipment_id', 'enterprise_id'),
        ('zrzyj', 'geohazard_points', 'point_id', 'town_code'),
    ] -%}
        {%- set raw = source(department, feed) -%}
        {%- set new_versions -%}
            select distinct
                arrived.{{ owner }} as owner,
                case
                    when {{ local_date('arrived.updated_at') }} > earliest.version_date
                        then {{ local_date('arrived.updated_at') }}
                    else cast('0001-01-01' as date)
                end as from_date
            from {{ raw }} as arrived
            inner join (
                select {{ key }}, min({{ local_date('updated_at') }}) as version_date
                from {{ raw }}
                group by {{ key }}
            ) as earliest
                on arrived.{{ key }} = earliest.{{ key }}
            where {{ loaded_since_last_build('arrived._loaded_at', built_since) }}
                and not exists (
                    select 1 from {{ raw }} as held
                    where held.{{ key }} = arrived.{{ key }}
                        and held._loaded_at <= {{ loaded_since }}
                        and held.updated_at >= arrived.updated_at
                        and {{ local_date('held.updated_at') }} = {{ local_date('arrived.updated_at') }}
                )
        {%- endset -%}
        {%- if owner == 'town_code' -%}
            {#- every enterprise ever registered in the town -#}
            {%- do snapshot_versions.append(
                "select distinct registry.enterprise_id, changed.from_date, cast('9999-12-31' as date) from "
                ~ registry ~ " as registry inner join (" ~ new_versions ~ ") as changed"
                ~ " on registry.town_code = changed.owner") -%}
        {%- else -%}
            {%- do snapshot_versions.append(
                "select owner, from_date, cast('9999-12-31' as date) from (" ~ new_versions ~ ") as changed") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set rebuild -%}
        select cast(null as varchar) as enterprise_id, reading_date as from_date, reading_date as to_date
        from (select distinct reading_date from {{ meter_days }} where _built_at > {{ built_since }}) as resequenced
        union all
        select cast(null as varchar), changed.changed_date - 1, changed.changed_date + monitoring.days
        from (
            select distinct reading_date as changed_date from {{ day_scores }} where _built_at > {{ built_since }}
            union
            select distinct reading_date from {{ cables }} where {{ loaded_since_last_build('_loaded_at', built_since) }}
        ) as changed
        cross join (
            select cast(max(case when parameter = 'monitoring_window_days' then value end) as integer) as days
            from {{ parameters }}
        ) as monitoring
        union all
        select cast(null as varchar), issued_date, coalesce({{ local_date('expires_at') }}, issued_date)
        from {{ warnings }}
        where {{ loaded_since_last_build('_loaded_at', built_since) }}
        union all
        select enterprise_id, found_date, cast('9999-12-31' as date)
        from {{ hazards }}
        where {{ loaded_since_last_build('_loaded_at', built_since) }}
        {%- for versions in snapshot_versions %}
        union all
        {{ versions }}
        {%- endfor %}
    {%- endset -%}
    {{ return(rebuild) }}
{%- endmacro %}

{# The rows of (enterprise_id, risk_date) that a risk_rebuild_sets() select covers (SQL condition). The
   select runs here, when the model compiles (and again when its strategy deletes, with the same bounds), and
   its rows are written in as date ranges, for every enterprise or for lists of enterprises: as a condition
   that read the select for each row (`exists`, an enterprise or every one, a date between), Postgres could
   only join it row by row, 600,000 risk rows against the select's hundreds (the delete of a full-scale
   daily build: 60 s). A range whose list would hold more than rebuild_meters_max() ids is rebuilt for every
   enterprise (more than changed: a rebuild is idempotent). #}
{% macro in_risk_rebuild(rebuild, enterprise_column, date_column) -%}
    {%- if rebuild is none -%}
        true
    {%- else -%}
        {%- set ranges = {} -%}
        {%- set rows = run_query_hash_joined(
            "select distinct cast(rebuild_from as varchar), cast(rebuild_to as varchar), rebuild_enterprise_id from ("
            ~ rebuild ~ ") as rebuild (rebuild_enterprise_id, rebuild_from, rebuild_to)"
            ~ " where rebuild_from is not null and rebuild_to is not null").rows -%}
        {%- for row in rows -%}
            {%- set key = row[0][:10] ~ '/' ~ row[1][:10] -%}
            {%- if row[2] is none -%}
                {%- do ranges.update({key: none}) -%}
            {%- elif key not in ranges -%}
                {%- do ranges.update({key: [row[2]]}) -%}
            {%- elif ranges[key] is not none -%}
                {%- do ranges[key].append(row[2]) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if not ranges -%}
            false
        {%- else -%}
            ({%- for key, enterprises in ranges | dictsort %}
            {{ 'or ' if not loop.first }}({{ date_column }} between cast('{{ key.split('/')[0] }}' as date) and cast('{{ key.split('/')[1] }}' as date)
                {%- if enterprises is not none and enterprises | unique | list | length <= rebuild_meters_max() %}
                and {{ in_id_list(enterprise_column, enterprises | unique | sort | list) }}
                {%- endif -%})
            {%- endfor %}
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# The build dates of int_enterprise_risk_points (meta build_dates, read by replace_build_dates): the
   enterprise days risk_rebuild_sets() covers, as a condition on its rows; None on a full build. #}
{% macro risk_rebuilt_rows() -%}
    {%- set rebuild = risk_rebuild_sets() -%}
    {%- if rebuild is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(in_risk_rebuild(rebuild, 'enterprise_id', 'risk_date')) }}
{%- endmacro %}

{# fct_enterprise_risk_daily rebuilds the enterprise days whose risk points were built since its own last
   build: a select of (enterprise_id, risk_date), None on a full build. #}
{% macro risk_daily_rebuild() -%}
    {%- if not execute or model.resource_type != 'model' or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set watermark = built_watermark() -%}
    {%- if watermark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return("select distinct enterprise_id, risk_date from " ~ ref('int_enterprise_risk_points')
        ~ " where _built_at > cast('" ~ watermark ~ "' as timestamp with time zone)") }}
{%- endmacro %}

{# The build dates of fct_enterprise_risk_daily (meta build_dates, read by replace_build_dates): the
   enterprise days risk_daily_rebuild() selects, as a condition on its rows; None on a full build. #}
{% macro risk_daily_rebuilt_rows() -%}
    {%- set rebuild = risk_daily_rebuild() -%}
    {%- if rebuild is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return("(enterprise_id, risk_date) in (" ~ rebuild ~ ")") }}
{%- endmacro %}

{# True when a model's compile-time queries can run: dbt is executing a model (not parsing, not a
   test) and every relation they read is built. `dbt docs generate` or `dbt compile` on a warehouse
   that has not been built yet compiles such a model without them (as if it had nothing new to add). #}
{% macro relations_built(relations) -%}
    {%- if not execute or model.resource_type != 'model' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- for relation in relations -%}
        {%- if adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) is none -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}
