//! The operator surface's words, in simplified Chinese (as the city's operators read it) and
//! English: bureau names, health states and the reasons behind them, times of day in Shanghai.
//! The admin API and `gateway ctl` give English; the dashboard follows the browser or a toggle.

use chrono::{FixedOffset, TimeZone};
use schemas::BureauId;

use crate::clock::Millis;

/// A language of the operator surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Its tag, as in `?lang=` and the `lang` attribute of a page.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Zh => "zh-CN",
            Self::En => "en",
        }
    }

    /// From a `?lang=` value or cookie: `zh`, `zh-CN`, `en` …
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Self::Zh),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header we speak, by its q-values; Chinese when
    /// none (the city's operators).
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Self::Zh;
        };
        let mut best: Option<(f32, Self)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Self::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::Zh, |(_, lang)| lang)
    }

    /// The other language (for the toggle).
    pub fn other(self) -> Self {
        match self {
            Self::Zh => Self::En,
            Self::En => Self::Zh,
        }
    }
}

/// A bureau's name: its short name in simplified characters, or its English name (from the
/// shared names, `schemas::BureauId::names`).
pub fn bureau_name(lang: Lang, bureau: BureauId) -> &'static str {
    match lang {
        Lang::Zh => bureau.names().short_zh_simplified,
        Lang::En => bureau.names().english,
    }
}

/// A credit list's name: as the city's documents call it, or in English.
pub fn credit_list_name(lang: Lang, list: schemas::CreditList) -> &'static str {
    use schemas::CreditList::*;
    match (lang, list) {
        (Lang::Zh, Dishonest) => "严重失信主体名单",
        (Lang::Zh, KeySupervision) => "重点关注名单",
        (Lang::Zh, Red) => "守信红名单",
        (Lang::En, Dishonest) => "dishonest-entity blacklist",
        (Lang::En, KeySupervision) => "key-supervision list",
        (Lang::En, Red) => "red list",
    }
}

/// A time of day in Shanghai, `HH:MM`.
pub fn clock(at: Millis) -> String {
    shanghai(at).map_or_else(|| "?".into(), |t| t.format("%H:%M").to_string())
}

/// A date and time in Shanghai, `YYYY-MM-DD HH:MM:SS`.
pub fn date_time(at: Millis) -> String {
    shanghai(at).map_or_else(|| "?".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn shanghai(at: Millis) -> Option<chrono::DateTime<FixedOffset>> {
    let offset = FixedOffset::east_opt(8 * 3600)?;
    offset.timestamp_millis_opt(at).single()
}

/// A date and time in Shanghai to the millisecond, for timelines.
pub fn precise_time(at: Millis) -> String {
    shanghai(at).map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

/// An age in words: `42 s`, `5 min`, `3 h`, `2 d` (the same in both languages, with the
/// Chinese units in Chinese).
pub fn age(lang: Lang, ms: Millis) -> String {
    let s = (ms / 1000).max(0);
    let (n, en, zh) = if s < 120 {
        (s, "s", "秒")
    } else if s < 7200 {
        (s / 60, "min", "分钟")
    } else if s < 172_800 {
        (s / 3600, "h", "小时")
    } else {
        (s / 86_400, "d", "天")
    };
    match lang {
        Lang::En => format!("{n} {en}"),
        Lang::Zh => format!("{n} {zh}"),
    }
}

/// Fixed labels of the operator surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each is the label it names
pub enum Label {
    Title,
    Exchange,
    Bureau,
    Health,
    Healthy,
    Degraded,
    Failing,
    LastIn,
    LastOut,
    InboundRate,
    Backlog,
    OldestPending,
    FailureRate,
    Circuit,
    Paused,
    DeadLetters,
    Certificate,
    Reason,
    Actions,
    Pause,
    Resume,
    Replay,
    Purge,
    Charts,
    Throughput,
    BacklogChart,
    CaseTimeline,
    CaseLookup,
    Show,
    Attempts,
    NoDeadLetters,
    NoEntries,
    Never,
    Yes,
    No,
    DaysLeft,
    PerMinute,
    Nodes,
    UpdatedAt,
    Language,
    Back,
    Message,
    Time,
    What,
    Detail,
    JointCases,
    NoJointCases,
    Overdue,
    OverdueCases,
    NoOverdueCases,
    OverdueTotal,
    Flow,
    Project,
    Due,
    WorkingDaysLeft,
    Waiting,
    Received,
    Routed,
    AttemptFailed,
    Delivered,
    DeadLettered,
    Pending,
    Closed,
    HalfOpen,
    Open,
    Push,
    Pull,
    AllHealthy,
    ChartIn,
    ChartOut,
    ChartFailed,
    ChartBacklog,
    CreditLists,
    CreditListings,
    CreditMatches,
    NoCreditListings,
    NoCreditMatches,
    Listed,
    ListedBy,
    List,
    Entry,
    Subject,
    InEffect,
    RemovedOn,
    Matched,
    Case,
    Item,
    Applicant,
    Told,
}

/// A label's words.
pub fn label(lang: Lang, label: Label) -> &'static str {
    use Label::*;
    let (zh, en) = match label {
        Title => ("交换运行看板", "Exchange health"),
        Exchange => ("数据交换网关", "Data-exchange gateway"),
        Bureau => ("委办局", "Bureau"),
        Health => ("状态", "Health"),
        Healthy => ("正常", "healthy"),
        Degraded => ("降级", "degraded"),
        Failing => ("故障", "failing"),
        LastIn => ("最近收到", "Last in"),
        LastOut => ("最近投递", "Last out"),
        InboundRate => ("收件速率", "Inbound"),
        Backlog => ("待投递", "Backlog"),
        OldestPending => ("最早待投递", "Oldest pending"),
        FailureRate => ("5 分钟失败率", "Failures (5 min)"),
        Circuit => ("熔断", "Circuit"),
        Paused => ("已暂停", "Paused"),
        DeadLetters => ("死信", "Dead letters"),
        Certificate => ("证书", "Certificate"),
        Reason => ("原因", "Reason"),
        Actions => ("操作", "Actions"),
        Pause => ("暂停投递", "Pause"),
        Resume => ("恢复投递", "Resume"),
        Replay => ("重新投递", "Replay"),
        Purge => ("清除", "Purge"),
        Charts => ("最近一小时", "Last hour"),
        Throughput => ("每分钟收发量", "Messages in and deliveries out per minute"),
        BacklogChart => ("待投递积压", "Backlog"),
        CaseTimeline => ("办件时间线", "Case timeline"),
        CaseLookup => (
            "项目代码、办件编号或消息编号",
            "Project code, case id or message id",
        ),
        Show => ("查询", "Show"),
        Attempts => ("投递尝试", "Attempts"),
        NoDeadLetters => ("没有死信。", "No dead letters."),
        NoEntries => ("没有找到记录。", "Nothing found."),
        Never => ("从未", "never"),
        Yes => ("是", "yes"),
        No => ("否", "no"),
        DaysLeft => ("天", "days"),
        PerMinute => ("条/分钟", "/min"),
        Nodes => ("节点", "Nodes"),
        UpdatedAt => ("更新于", "Updated"),
        Language => ("English", "中文"),
        Back => ("返回看板", "Back to the dashboard"),
        Message => ("消息", "Message"),
        Time => ("时间", "Time"),
        What => ("事项", "What"),
        Detail => ("详情", "Detail"),
        JointCases => ("并联审批", "Joint cases"),
        NoJointCases => ("没有进行中的并联审批。", "No open joint cases."),
        Overdue => ("超期", "Overdue"),
        OverdueCases => ("超期办件", "Overdue cases"),
        NoOverdueCases => ("没有超期的办件。", "No case is overdue."),
        OverdueTotal => ("超期办件数", "Overdue cases in all"),
        Flow => ("流程", "Flow"),
        Project => ("项目", "Project"),
        Due => ("到期", "Due"),
        WorkingDaysLeft => ("剩余工作日", "Working days left"),
        Waiting => ("待申报", "waiting"),
        Received => ("收到", "received"),
        Routed => ("路由", "routed"),
        AttemptFailed => ("投递失败", "attempt failed"),
        Delivered => ("已投递", "delivered"),
        DeadLettered => ("转入死信", "dead-lettered"),
        Pending => ("待投递", "pending"),
        Closed => ("闭合", "closed"),
        HalfOpen => ("半开", "half-open"),
        Open => ("断开", "open"),
        Push => ("推送", "push"),
        Pull => ("拉取", "pull"),
        AllHealthy => ("所有委办局运行正常。", "All bureaus are healthy."),
        ChartIn => ("收件", "in"),
        ChartOut => ("投递", "out"),
        ChartFailed => ("失败", "failed"),
        ChartBacklog => ("积压", "backlog"),
        CreditLists => ("信用名单", "Credit lists"),
        CreditListings => ("最近列入或移出", "Latest listings"),
        CreditMatches => ("最近命中的办件", "Latest matches"),
        NoCreditListings => ("还没有名单条目。", "Nothing listed yet."),
        NoCreditMatches => (
            "还没有申请人在名单上的办件。",
            "No case's applicant is on a list.",
        ),
        Listed => ("列入时间", "Listed"),
        ListedBy => ("列入单位", "Listed by"),
        List => ("名单", "List"),
        Entry => ("条目", "Entry"),
        Subject => ("主体", "Subject"),
        InEffect => ("有效期", "In effect"),
        RemovedOn => ("移出于", "removed on"),
        Matched => ("命中时间", "Matched"),
        Case => ("办件", "Case"),
        Item => ("事项", "Item"),
        Applicant => ("申请人", "Applicant"),
        Told => ("已通知", "Told"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_language_we_speak() {
        let pick = |h| Lang::from_accept_language(Some(h));
        assert_eq!(pick("en-US,en;q=0.9"), Lang::En);
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(pick("fr;q=1.0, en;q=0.5, zh;q=0.7"), Lang::Zh);
        assert_eq!(pick("de"), Lang::Zh, "none we speak: Chinese");
        assert_eq!(Lang::from_accept_language(None), Lang::Zh);
    }

    #[test]
    fn times_are_shanghai_times() {
        // 2026-12-01T02:42:00Z is 10:42 in Shanghai.
        assert_eq!(clock(1_796_092_920_000), "10:42");
        assert_eq!(date_time(1_796_092_920_000), "2026-12-01 10:42:00");
        assert_eq!(age(Lang::En, 300_000), "5 min");
        assert_eq!(age(Lang::Zh, 30_000), "30 秒");
    }
}
