-- The queries BI tools send to the marts: the two exposures' dashboards (dbt_project/models/exposures.yml)
-- and the README's examples. Each starts with `-- name:` and `-- what:`; plain SQL that runs as bi_reader
-- on Postgres and on the embedded DuckDB, on the latest day the marts hold (a dashboard's default view).
-- `edw bench` times each (median and p95, and the indexes Postgres uses); tests run each as bi_reader.

-- name: response_week_by_channel
-- what: Response times dashboard, headline: the last 7 days per channel (110/119/120)
select channel,
       sum(incident_count) as incidents,
       sum(dispatched_incident_count) as dispatched,
       avg(response_p50_seconds) as response_p50_seconds,
       avg(response_p90_seconds) as response_p90_seconds,
       avg(response_within_target_share) as within_target_share
from marts.agg_response_times_daily
where received_date > (select max(received_date) from marts.agg_response_times_daily) - 7
group by channel
order by channel;

-- name: response_day_by_town
-- what: Response times dashboard, map: the latest day per town, with the town's name
select t.town_name_zh, t.town_name, a.channel,
       sum(a.incident_count) as incidents,
       avg(a.response_p90_seconds) as response_p90_seconds,
       avg(a.response_within_target_share) as within_target_share
from marts.agg_response_times_daily as a
join marts.dim_town as t on t.town_code = a.town_code
where a.received_date = (select max(received_date) from marts.agg_response_times_daily)
group by t.town_name_zh, t.town_name, a.channel
order by incidents desc;

-- name: response_month_by_category
-- what: Response times dashboard, by GB/T 35561 event category over the last 30 days
select a.event_category, c.event_category_name_zh,
       sum(a.incident_count) as incidents,
       avg(a.alarm_handling_p90_seconds) as alarm_handling_p90_seconds,
       avg(a.turnout_p90_seconds) as turnout_p90_seconds,
       avg(a.travel_p90_seconds) as travel_p90_seconds
from marts.agg_response_times_daily as a
left join (select distinct event_category, event_category_name_zh from marts.dim_event_type) as c
    on c.event_category = a.event_category
where a.received_date > (select max(received_date) from marts.agg_response_times_daily) - 30
group by a.event_category, c.event_category_name_zh
order by incidents desc;

-- name: slowest_incidents_of_the_day
-- what: Response times dashboard, drill-down: the latest day's 50 slowest responses with their flags
select i.incident_id, i.channel, e.event_type_name_zh, i.town_code, i.received_at, i.response_seconds,
       i.units_dispatched, i.has_missing_timestamp, i.has_reversed_timestamp
from marts.fct_incident_response as i
left join marts.dim_event_type as e on e.event_type_code = i.event_type_code
where i.received_date = (select max(received_date) from marts.fct_incident_response)
  and i.response_seconds is not null
order by i.response_seconds desc
limit 50;

-- name: incident_data_quality_month
-- what: Response times dashboard, data quality: incidents with missing or reversed timestamps, 30 days
select channel,
       count(*) as incidents,
       sum(case when has_missing_timestamp then 1 else 0 end) as missing_timestamp,
       sum(case when has_reversed_timestamp then 1 else 0 end) as reversed_timestamp,
       sum(case when has_dispatch then 0 else 1 end) as never_dispatched
from marts.fct_incident_response
where received_date > (select max(received_date) from marts.fct_incident_response) - 30
group by channel
order by channel;

-- name: rescue_capacity_by_town
-- what: Response times dashboard, the rescue teams each town can call on
select t.town_name_zh, count(*) as teams, sum(r.members) as members, sum(r.vehicles) as vehicles
from marts.dim_rescue_team as r
join marts.dim_town as t on t.town_code = r.town_code
group by t.town_name_zh
order by members desc;

-- name: hazard_tasks_open_by_town
-- what: Safety oversight dashboard, hazard loop: open grid tasks per town and overdue step
select t.town_name_zh, h.overdue_step,
       count(*) as open_tasks,
       sum(case when h.is_overdue then 1 else 0 end) as overdue
from marts.fct_hazard_lifecycle as h
left join marts.dim_town as t on t.town_code = h.town_code
where not h.is_closed
group by t.town_name_zh, h.overdue_step
order by overdue desc, open_tasks desc;

-- name: hazard_closure_times_by_source
-- what: Safety oversight dashboard, hazard loop: how long tasks took to close over the last 30 days
select source,
       count(*) as tasks,
       sum(case when is_closed then 1 else 0 end) as closed,
       percentile_cont(0.5) within group (order by task_to_closed_hours) as median_hours_to_close,
       percentile_cont(0.9) within group (order by task_to_closed_hours) as p90_hours_to_close
from marts.fct_hazard_lifecycle
where created_date > (select max(created_date) from marts.fct_hazard_lifecycle) - 30
group by source
order by source;

-- name: departments_filter
-- what: Safety oversight dashboard, its department filter: the departments and towns that send data
select department_code, department_name_zh, department_name, provider_kind
from marts.dim_department
order by provider_kind, department_code;

-- name: evaluation_flags_by_agency
-- what: Safety oversight dashboard, evaluation oversight: each agency's projects and red flags
select agency_id,
       count(*) as projects,
       sum(case when is_remote_evaluation then 1 else 0 end) as remote_evaluations,
       sum(case when has_low_face_match then 1 else 0 end) as low_face_matches,
       sum(case when has_overlapping_distant_sites then 1 else 0 end) as overlapping_distant_sites,
       sum(case when is_remote_evaluation or has_low_face_match or has_overlapping_distant_sites then 1 else 0 end)
           as projects_flagged,
       avg(contract_to_report_hours) as mean_hours_contract_to_report
from marts.fct_evaluation_oversight
group by agency_id
order by projects_flagged desc, projects desc;

-- name: risk_levels_latest_day
-- what: README example: enterprises per risk level on the latest day scored
select risk_level, level_reason, count(*) as enterprises
from marts.fct_enterprise_risk_daily
where risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily)
group by risk_level, level_reason
order by enterprises desc;

-- name: riskiest_enterprises_latest_day
-- what: the map's list: the 20 highest risk indexes of the latest day, with name and town
select r.enterprise_id, e.enterprise_name, e.town_name_zh, e.industry_name_zh, r.risk_index, r.risk_level,
       r.top_factors
from marts.fct_enterprise_risk_daily as r
join marts.dim_enterprise as e on e.enterprise_id = r.enterprise_id
where r.risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily)
order by r.risk_index desc
limit 20;

-- name: risk_trend_of_the_riskiest
-- what: an enterprise's page: the risk index of the latest day's riskiest enterprise over 60 days
select r.risk_date, r.risk_index, r.risk_level, r.inherent_score, r.management_score, r.environment_score,
       r.monitoring_score
from marts.fct_enterprise_risk_daily as r
where r.enterprise_id = (
        select enterprise_id from marts.fct_enterprise_risk_daily
        where risk_date = (select max(risk_date) from marts.fct_enterprise_risk_daily)
        order by risk_index desc, enterprise_id
        limit 1)
  and r.risk_date > (select max(risk_date) from marts.fct_enterprise_risk_daily) - 60
order by r.risk_date;

-- name: power_warnings_week
-- what: README example: the power warnings of the last 7 days by rule and town
select a.rule, e.town_name_zh, count(*) as warnings, count(distinct a.enterprise_id) as enterprises
from marts.fct_power_anomalies as a
join marts.dim_enterprise as e on e.enterprise_id = a.enterprise_id
where a.started_at > (select max(started_at) from marts.fct_power_anomalies) - interval '7 days'
group by a.rule, e.town_name_zh
order by warnings desc;
