//! The catalogue entry and the application form.

use super::*;

/// The type of an application field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A string.
    Text,
    /// A number.
    Number,
    /// true or false.
    Boolean,
    /// A `YYYY-MM-DD` date.
    Date,
    /// One of these strings.
    Choice(Vec<String>),
    /// A place id of the host's tree (checked by the host); the first place
    /// field of a form sets the case's place.
    Place,
    /// The id number of the person the case is about. **Not honoured
    /// yet**: today's host refuses to load a plugin whose form has one.
    Subject,
}

/// One field of the application form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The JSON key.
    pub name: String,
    /// Its type.
    pub kind: FieldKind,
    /// Whether it must be given.
    pub required: bool,
    /// A sentence for the applicant.
    pub description: String,
}

impl Field {
    fn new(name: &str, kind: FieldKind) -> Self {
        Field {
            name: name.into(),
            kind,
            required: false,
            description: String::new(),
        }
    }

    /// A text field (optional until [`Field::required`]).
    pub fn text(name: &str) -> Self {
        Self::new(name, FieldKind::Text)
    }

    /// A number field.
    pub fn number(name: &str) -> Self {
        Self::new(name, FieldKind::Number)
    }

    /// A true/false field.
    pub fn boolean(name: &str) -> Self {
        Self::new(name, FieldKind::Boolean)
    }

    /// A `YYYY-MM-DD` date field.
    pub fn date(name: &str) -> Self {
        Self::new(name, FieldKind::Date)
    }

    /// A field whose value must be one of `choices`.
    pub fn choice(name: &str, choices: &[&str]) -> Self {
        Self::new(
            name,
            FieldKind::Choice(choices.iter().map(|c| (*c).to_owned()).collect()),
        )
    }

    /// A field holding a place id of the host's tree, e.g. the district a
    /// company registers in. The host checks the place exists; the form's
    /// first place field sets the case's place.
    ///
    /// ```
    /// use onething_sdk::{Field, FieldKind};
    ///
    /// let f = Field::place("district").required().describe("Where the company registers.");
    /// assert_eq!(f.kind, FieldKind::Place);
    /// ```
    pub fn place(name: &str) -> Self {
        Self::new(name, FieldKind::Place)
    }

    /// The field naming the person the case is about (at most one per
    /// form). The host binds it to the caller: left out, it is filled with
    /// the caller's id number; the caller's own id is accepted; anyone
    /// else's needs a mandate from that person to the caller for this
    /// scenario (dataset `civil-affairs/mandates`), else the application is
    /// `403 no_mandate` and never reaches the plugin. Declare the person an
    /// application acts for as the subject, never as a plain text field.
    ///
    /// ```
    /// use onething_sdk::{Field, FieldKind};
    ///
    /// assert_eq!(Field::subject("child_id").kind, FieldKind::Subject);
    /// ```
    pub fn subject(name: &str) -> Self {
        Self::new(name, FieldKind::Subject)
    }

    /// Makes the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the sentence shown to the applicant.
    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }
}

/// What a scenario is, for the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The scenario id. The manifest's `id` is the truth: leave this empty
    /// (the host fills it in) or repeat it exactly; a different one is
    /// refused at upload, naming both.
    pub id: String,
    /// The title shown to applicants. The manifest's `title` is the truth,
    /// as for `id`: empty, or exactly the manifest's.
    pub title: String,
    /// What the applicant gets done.
    pub description: String,
    /// Every department involved.
    pub departments: Vec<String>,
    /// The application form.
    pub fields: Vec<Field>,
}

impl Info {
    /// A scenario whose id and title are its manifest's (`onething.toml`,
    /// declared once, filled in by the host), with no fields yet.
    pub fn from_manifest() -> Self {
        Info::new("", "")
    }

    /// A scenario `id` titled `title`, with no fields yet: both must be
    /// the manifest's ([`Info::from_manifest`] leaves them to it).
    pub fn new(id: &str, title: &str) -> Self {
        Info {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            departments: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.into();
        self
    }

    /// Adds a department the scenario involves.
    pub fn department(mut self, department: &str) -> Self {
        self.departments.push(department.into());
        self
    }

    /// Adds a field to the form.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }
}

impl From<Info> for wit::Info {
    fn from(i: Info) -> Self {
        wit::Info {
            id: i.id,
            title: i.title,
            description: i.description,
            departments: i.departments,
            fields: i
                .fields
                .into_iter()
                .map(|f| wit::Field {
                    name: f.name,
                    kind: match f.kind {
                        FieldKind::Text => wit::FieldKind::Text,
                        FieldKind::Number => wit::FieldKind::Number,
                        FieldKind::Boolean => wit::FieldKind::Boolean,
                        FieldKind::Date => wit::FieldKind::Date,
                        FieldKind::Choice(c) => wit::FieldKind::Choice(c),
                        FieldKind::Place => wit::FieldKind::Place,
                        FieldKind::Subject => wit::FieldKind::Subject,
                    },
                    required: f.required,
                    description: f.description,
                })
                .collect(),
        }
    }
}
