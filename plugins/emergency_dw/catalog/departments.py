"""Who delivers the feeds: the departments, the power utility and the towns.

A department's code names its feeds' module (``catalog/feeds/<code>.py``), its dbt staging folder
(``dbt_project/models/staging/<code>/``) and its dbt source (``source('<code>', '<feed>')``). The order here is
the order of ``FEEDS`` (the DAGs, ``edw catalog`` and the reports list feeds in it).
"""

from __future__ import annotations

from .model import Department

DEPARTMENTS: tuple[Department, ...] = (
    Department("power", "State Grid Wenzhou Power Supply Company", "国网温州供电公司", "utility"),
    Department("amr", "Market Regulation Bureau", "市场监督管理局"),
    Department("yjj", "Emergency Management Bureau", "应急管理局"),
    Department("gaj", "Public Security Bureau", "公安局"),
    Department("xfj", "Fire and Rescue Detachment", "消防救援支队"),
    Department("wjw", "Health Commission", "卫生健康委员会"),
    Department("slj", "Water Resources Bureau", "水利局"),
    Department("zrzyj", "Natural Resources and Planning Bureau", "自然资源和规划局"),
    Department("qxj", "Meteorological Bureau", "气象局"),
    Department("zjj", "Housing and Urban-Rural Development Bureau", "住房和城乡建设局"),
    Department("jtj", "Transport Bureau", "交通运输局"),
    Department("mzj", "Civil Affairs Bureau", "民政局"),
    Department("tjj", "Statistics Bureau", "统计局"),
    Department("sthjj", "Ecology and Environment Bureau", "生态环境局"),
    Department("hyj", "Ocean and Fisheries Bureau", "海洋与渔业局"),
    Department("lyj", "Forestry Bureau", "林业局"),
    Department("jyj", "Education Bureau", "教育局"),
    Department("zfj", "Urban Management and Law Enforcement Bureau", "综合行政执法局"),
    Department("wgl", "Culture, Radio, TV and Tourism Bureau", "文化广电旅游局"),
    Department("dsj", "Big Data Development Administration", "大数据发展管理局"),
    Department("jxj", "Economy and Information Technology Bureau", "经济和信息化局"),
    Department("swj", "Commerce Bureau", "商务局"),
    Department("nyj", "Agriculture and Rural Affairs Bureau", "农业农村局"),
    Department("towns", "The 18 towns of Cangnan county", "苍南县18个乡镇", "town"),
)
